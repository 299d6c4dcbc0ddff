"""Drop-in subclasses of Keras layers that compute the same thing faster for these networks.

TensorFlow's CPU kernels for 3-D convolutions are slow for the shapes the paper's
networks use (measured in docs/generators-keras.md): a (7, 7, 1) Conv3D is a 2-D
convolution of every depth slice, a (1, 1, k) Conv3D of stride (1, 1, k) and a
Conv3DTranspose whose kernel equals its stride are matrix products, and batch norm
over a 5-D map is TensorFlow's fused 4-D batch norm after a reshape. These layers
keep the Keras classes' weights (names, shapes, layout: a weights file is the one
the stock layers would write) and their maths; only the kernels differ.
``tests/plugins/test_keras.py`` checks them against the stock layers.
"""

from __future__ import annotations

from crystens_keras.backend import keras, tf


class Conv3D(keras.layers.Conv3D):
    """``keras.layers.Conv3D`` with fast paths for depth-1 kernels and depth-only strided kernels."""

    def convolution_op(self, inputs, kernel):
        kd_h, kd_w, kd_d = self.kernel_size
        s_h, s_w, s_d = self.strides
        plain = self.data_format == "channels_last" and tuple(self.dilation_rate) == (1, 1, 1) and self.groups == 1
        if plain and kd_d == 1 and s_d == 1:  # a 2-D convolution of every depth slice
            shape = tf.shape(inputs)
            n, h, w, d, f = shape[0], shape[1], shape[2], shape[3], shape[4]
            slices = tf.reshape(tf.transpose(inputs, [0, 3, 1, 2, 4]), tf.stack([n * d, h, w, f]))
            out = tf.nn.conv2d(slices, kernel[:, :, 0], strides=[1, s_h, s_w, 1], padding=self.padding.upper())
            out_shape = tf.shape(out)
            return tf.transpose(tf.reshape(out, tf.stack([n, d, out_shape[1], out_shape[2], out_shape[3]])), [0, 2, 3, 1, 4])
        if plain and (kd_h, kd_w, s_h, s_w) == (1, 1, 1, 1) and kd_d == s_d and self.padding == "valid":
            # Depth windows of k neighbours without overlap: one matrix product per voxel column.
            shape = tf.shape(inputs)
            n, h, w, d, f = shape[0], shape[1], shape[2], shape[3], shape[4]
            windows = d // kd_d
            grouped = tf.reshape(inputs[:, :, :, : windows * kd_d], tf.stack([n, h, w, windows, kd_d * f]))
            return tf.tensordot(grouped, tf.reshape(kernel, [kd_d * kernel.shape[3], kernel.shape[4]]), axes=1)
        return super().convolution_op(inputs, kernel)


class Conv3DTranspose(keras.layers.Conv3DTranspose):
    """``keras.layers.Conv3DTranspose`` with a fast path when the kernel equals the stride
    (valid padding): each input voxel then fills its own block of the output."""

    def call(self, inputs):
        k = tuple(self.kernel_size)
        if (
            k == tuple(self.strides)
            and self.padding == "valid"
            and self.data_format == "channels_last"
            and tuple(self.dilation_rate) == (1, 1, 1)
            and self.output_padding is None
        ):
            shape = tf.shape(inputs)
            n, h, w, d = shape[0], shape[1], shape[2], shape[3]
            filters = self.filters
            # kernel (kh, kw, kd, out, in) → (in, kh·kw·kd·out)
            matrix = tf.reshape(tf.transpose(self.kernel, [4, 0, 1, 2, 3]), [self.kernel.shape[4], -1])
            blocks = tf.reshape(tf.tensordot(inputs, matrix, axes=1), tf.stack([n, h, w, d, k[0], k[1], k[2], filters]))
            out = tf.reshape(tf.transpose(blocks, [0, 1, 4, 2, 5, 3, 6, 7]), tf.stack([n, h * k[0], w * k[1], d * k[2], filters]))
            if self.use_bias:
                out = out + self.bias
            return self.activation(out) if self.activation is not None else out
        return super().call(inputs)


class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` that trains 5-D maps (normalised over the last axis)
    with TensorFlow's fused kernel; everything else goes to the stock layer."""

    def call(self, inputs, training=None, mask=None):
        rank = len(inputs.shape)
        if not training or not self.trainable or self.renorm or rank < 4 or self.axis not in (-1, rank - 1) or inputs.dtype != tf.float32 or mask is not None:
            return super().call(inputs, training=training, mask=mask)
        shape = tf.shape(inputs)
        flat = tf.reshape(inputs, tf.stack([shape[0], shape[1], -1, shape[rank - 1]]))
        gamma = self.gamma if self.scale else tf.ones_like(self.moving_mean)
        beta = self.beta if self.center else tf.zeros_like(self.moving_mean)
        out, mean, variance = tf.compat.v1.nn.fused_batch_norm(flat, gamma, beta, epsilon=self.epsilon, is_training=True)
        # The fused kernel returns the unbiased (n − 1) variance; Keras tracks the biased one.
        count = tf.cast(tf.size(inputs) // shape[rank - 1], tf.float32)
        variance = variance * (count - 1.0) / count
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(self.moving_variance * momentum + variance * (1.0 - momentum))
        return tf.reshape(out, shape)

