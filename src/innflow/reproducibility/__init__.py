"""What a result depends on and whether it came out the same: code, environment and data
provenance, the data files a notebook read, run comparison and `reproduce`'s verdict. Pure.
"""
