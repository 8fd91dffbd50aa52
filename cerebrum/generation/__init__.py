"""The one request every wire format is translated to, and the events a generation yields."""
