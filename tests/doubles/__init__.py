"""Local stand-ins for outside services, served over real HTTP so the real SDKs talk to them."""
