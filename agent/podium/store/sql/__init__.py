"""The store's SQL, shared by every dialect: the parts, the store composed of them, the
database and dialect protocols they are written against."""
