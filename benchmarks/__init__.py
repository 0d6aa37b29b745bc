"""Speed of hnetkit's hot paths, side by side with hypnettorch 0.0.4 (never imported by the library)."""
