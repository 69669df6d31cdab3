"""One Streamlit page per file (st.navigation runs them); common.py holds what they share."""
