"""The framework's private runtime: activations, gates, alarms, hibernation, data channels, hosts."""
