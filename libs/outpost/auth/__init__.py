"""Who may call what on the admin plane and the internal service network (ADR 0012).

- `principals`: roles and the principal a call runs as;
- `policy`: the one table saying which principal each RPC needs (deny by default);
- `bearer`: bearer secrets (generated, hashed, sent in `authorization` metadata);
- `service_tokens`: the secrets services present to each other;
- `interceptor`: the server interceptor that authenticates, authorizes and audits;
- `audit`: the trail of changes each service keeps in its own tables.
"""
