"""The read side: figures for admins and the releases a viewer reads; no Flask, no HTTP."""
