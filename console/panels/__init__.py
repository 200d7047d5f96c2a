"""Main-screen panels, one module each. Every panel has ``key`` (its dirty flag in the model) and
``refresh_from(model)``, called by the app's refresh tick only when it is visible and dirty."""
