"""The whymoji command line."""
