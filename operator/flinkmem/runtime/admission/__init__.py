"""Admission: one service that answers every review, and the transports that carry its answers.

- `review`: the AdmissionReview as typed data, checked before anything reads it.
- `service`: namespace scope, the decision, metrics, refusal logging, Events and the fail-open and
  fail-closed rules, once, returning an `Answer`.
- `direct`: the answer as an AdmissionReview response (the default path).
- `kopfpath`: the same answer through kopf's admission engine (`--admission-engine kopf`); the only
  module that touches kopf's private modules.
"""
