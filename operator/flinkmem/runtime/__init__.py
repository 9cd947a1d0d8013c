"""The edges: flinkmem running in a cluster.

Settings, the HTTPS and health servers, the admission service and its two transports (the direct
HTTP answer and kopf's admission engine), the controller, the API client, metrics, certificates and
webhook registration. Only this layer talks to Kubernetes or imports kopf.
"""
