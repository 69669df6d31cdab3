"""Pure polars queries behind the pages: frames in, frames out, no streamlit, tested on their own."""
