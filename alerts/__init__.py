"""newswatch alert side: outbox rows from matches, their dispatch, and the delivery channels."""
