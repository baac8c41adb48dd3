"""`dtpoc`: the platform's command-line client. It speaks the REST API's v1beta1 contract over HTTP
only (no server code imported), so it runs anywhere the API is reachable."""
