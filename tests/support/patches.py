"""Patches the tests make a scripted model send: edits of the chat-classic template."""

from __future__ import annotations


def heading_patch(title: str) -> str:
    """A unified diff renaming the template's ``<h1>Chat</h1>`` in src/App.tsx to ``title``."""
    return f"""\
--- a/src/App.tsx
+++ b/src/App.tsx
@@ -33,3 +33,3 @@
       <header className="chat__header">
-        <h1>Chat</h1>
+        <h1>{title}</h1>
       </header>
"""
