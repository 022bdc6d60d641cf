"""Git objects, trees, commits and LFS pointers (dulwich's object model). No HTTP, no SQL."""
