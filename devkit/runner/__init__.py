"""Process plumbing: synthesize the templates, provision them locally, start every worker."""
