"""One module per kind of event: each applies the rules to the subject's ledger.

``policy.decide`` dispatches to them; they return the state fields they changed beyond the
ledger's (the rate baseline's recent requests, break-glass uses, a workload's seen pairs).
"""
