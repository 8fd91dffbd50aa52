"""Fill-in-the-middle planning (pure): the repository context chosen, the bodies sent."""
