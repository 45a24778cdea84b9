"""Staff: tellers and their roles, login sessions, API tokens and login locks."""
