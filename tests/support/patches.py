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


GREETING_PATCH = """\
--- a/src/App.tsx
+++ b/src/App.tsx
@@ -8,3 +8,3 @@
   role: "assistant",
-  text: "Hello! Ask me anything.",
+  text: "Welcome! Ask me anything.",
 };
"""
"""A unified diff changing the template's greeting in src/App.tsx: lines apart from the
heading (:func:`heading_patch`), so the two merge cleanly."""

STYLE_PATCH = """\
--- a/src/styles.css
+++ b/src/styles.css
@@ -1,4 +1,4 @@
 :root {
   font-family: system-ui, -apple-system, "Segoe UI", sans-serif;
-  color: #1f2328;
+  color: #102030;
   background: #f6f8fa;
"""
"""A unified diff darkening the template's text colour in src/styles.css."""


def add_file(path: str, text: str) -> str:
    """A ``*** Begin Patch`` envelope adding ``path`` holding the one line ``text``."""
    return f"*** Begin Patch\n*** Add File: {path}\n+{text}\n*** End Patch\n"
