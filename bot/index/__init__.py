"""The index in Chroma: passages and their article catalog (store), Chroma's failures as clear
errors (errors), and the search state retrieval keeps beside the vectors (search_state)."""
