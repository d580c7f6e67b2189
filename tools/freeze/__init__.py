"""SavedModel export, frozen GraphDefs, and loading the original frozen graph."""
