"""What a host is: the probe's facts as the controller validates them, and facts derived from them."""
