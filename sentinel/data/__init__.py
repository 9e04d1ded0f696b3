"""Getting data into the store: validated imports and the synthetic demo universe."""
