"""emdl inside CVAT: a run as a ``cvat_sdk`` auto-annotation function (:mod:`emdl.cvat.function`,
for ``cvat-cli task auto-annotate``) and as a nuclio serverless function folder
(:mod:`emdl.cvat.serverless`, for CVAT's "AI tools"); both share :mod:`emdl.cvat.shapes`.
cvat-sdk (the ``cvat`` extra) is imported only inside :mod:`emdl.cvat.function`'s functions."""
