"""What the providers' answers say about a user: pure functions, unit-tested."""


def primary_verified_email(emails):
    """From GitHub's GET /user/emails: the primary address if it is verified."""
    for entry in emails if isinstance(emails, list) else []:
        if isinstance(entry, dict) and entry.get("primary") and entry.get("verified") and entry.get("email"):
            return entry["email"].lower()
    return None


def github_teams(auth_state):
    """GitHub teams as org:team, JupyterHub's group names for admin_groups."""
    return [f"{t['organization']['login']}:{t['slug']}" for t in auth_state.get("teams") or []]
