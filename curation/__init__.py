"""Curation: raw national crop-label products to validated, harmonized, chipped and subset data."""
