"""Change control: which policy is in force (loaded, signature-checked, reloaded, recorded)
and the key files that sign policies and reviews."""
