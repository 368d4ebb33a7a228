"""What innflow says about a fitted model: metrics, threshold, business cost, slices, the
leakage audit, explanations, the gate's verdict, plots and the one-page report. Pure.
"""
