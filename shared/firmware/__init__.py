"""Firmware updates: versions as the firmware compares them, where release files
live (one storage seam: a local directory or an S3 bucket), and the signed
links that let a Dot download one file for a short time."""
