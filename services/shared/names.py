"""Names both services and the platform program agree on."""

# MongoDB: one document per launched service, keyed by the Analytics resource's name.
RECORDS_DATABASE = "orchestrator"
SERVICES_COLLECTION = "services"
# GridFS bucket (default name "fs") for uploaded inputs and collected outputs.
FILES_DATABASE = "orchestrator_files"

# Labels on everything the platform makes (Kubernetes recommended labels).
PART_OF = "dtpoc"
MANAGED_BY_OPERATOR = "dtpoc-orchestrator-operator"
SERVICE_ID_LABEL = "orchestrator.eng.cam.ac.uk/service-id"
# On the platform's own pods only, and part of every platform selector (Services, NetworkPolicies): the
# operator makes module labels from fixed keys and never this one, so whatever a module image is called,
# no platform selector matches a module pod.
PLATFORM_APP_LABEL = "platform.dtpoc.eng.cam.ac.uk/app"

# Inside a module's pods.
INPUT_DIR = "/input"
OUTPUT_DIR = "/output"
