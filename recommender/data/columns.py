"""The column names of a ratings table, everywhere: pandas frames, Spark DataFrames, Parquet."""

USER, ITEM, RATING = "user", "item", "rating"
COLUMNS = (USER, ITEM, RATING)
PREDICTION = "prediction"  # MLlib's own name for a predicted rating
