"""What a model is: the booking features, the model kinds and their pipelines, the tuning
search spaces, and what a model innflow did not train needs from the bookings. Pure.
"""
