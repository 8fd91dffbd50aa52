"""Wire bodies parsed into what the engine runs, and its events rendered back as replies."""
