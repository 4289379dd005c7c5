"""The five Mask R-CNN losses, each a scalar float32 averaged as in Detectron."""

from __future__ import annotations

import tensorflow as tf

SMOOTH_L1_BETA = 1.0 / 9.0  # Detectron's: nearly L1, quadratic only very close to 0


def smooth_l1(difference: tf.Tensor, beta: float = SMOOTH_L1_BETA) -> tf.Tensor:
    """Elementwise smooth L1 of ``difference``: ``0.5 x**2 / beta`` below ``beta``, else
    ``|x| - 0.5 beta``."""
    magnitude = tf.abs(difference)
    return tf.where(magnitude < beta, 0.5 * magnitude**2 / beta, magnitude - 0.5 * beta)


def _over(total: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
    return total / tf.maximum(count, 1.0)


def objectness_loss(logits: tf.Tensor, labels: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """Binary cross-entropy of objectness ``logits`` ``(B, N)`` against 0/1 ``labels``, mean
    over the sampled anchors (``weights`` 1)."""
    losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    return _over(tf.reduce_sum(losses * weights), tf.reduce_sum(weights))


def box_loss(
    predicted: tf.Tensor, target: tf.Tensor, positive: tf.Tensor, weights: tf.Tensor
) -> tf.Tensor:
    """Smooth L1 of box deltas ``(B, N, 4)`` over the positives, summed over the four deltas and
    divided by the number of sampled boxes (``weights`` 1), so that an image with few objects
    does not weigh its few boxes up."""
    losses = tf.reduce_sum(smooth_l1(predicted - target), axis=-1)
    total = tf.reduce_sum(tf.where(positive, losses, 0.0))
    return _over(total, tf.reduce_sum(weights))


def classification_loss(logits: tf.Tensor, labels: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """Softmax cross-entropy of class ``logits`` ``(B, R, classes + 1)`` against ``labels``
    int32 ``(B, R)``, mean over the sampled regions."""
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return _over(tf.reduce_sum(losses * weights), tf.reduce_sum(weights))


def mask_loss(
    logits: tf.Tensor, labels: tf.Tensor, targets: tf.Tensor, positive: tf.Tensor
) -> tf.Tensor:
    """Binary cross-entropy of mask ``logits`` ``(B, R, 28, 28, classes)``, each positive
    region's own class channel (``labels - 1``) against its 0/1 ``targets`` ``(B, R, 28, 28)``,
    mean over the positives' pixels."""
    channel = tf.maximum(labels - 1, 0)
    own = tf.gather(tf.transpose(logits, (0, 1, 4, 2, 3)), channel, axis=2, batch_dims=2)
    losses = tf.reduce_mean(
        tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=own), axis=(-2, -1)
    )
    count = tf.reduce_sum(tf.cast(positive, tf.float32))
    return _over(tf.reduce_sum(tf.where(positive, losses, 0.0)), count)
