"""The paper's TensorFlow/Keras GAN and WGAN-GP (generators ``gan-keras`` and ``wgan-gp-keras``).

Built-in plugin; needs ``crystens[tf]``. Importing this package, or its ``plugin``
module, does not import TensorFlow: the registered factories import
:mod:`crystens_keras.gan` or :mod:`crystens_keras.wgan_gp` when a generator is created.
"""
