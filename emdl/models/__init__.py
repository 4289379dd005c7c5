"""Models: the U-Net, the YOLO-style detector (keras-cv, through
:mod:`emdl.models.keras_cv_adapter`) and Mask R-CNN, their losses and shared inference settings."""
