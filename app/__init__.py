"""Streamlit app: class balance, legends, chips and transfer gaps, read from artifacts only."""
