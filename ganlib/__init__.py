"""ganlib: the library behind the book *GAN-based anomaly detection*.

Importing ``ganlib`` (or any paper sub-package) imports neither PyTorch nor
TensorFlow: a framework is imported only when a detector of that framework is
built.  Every detector follows one API, PyOD's ``BaseDetector`` contract with
scikit-learn's parameter conventions::

    det = Detector(framework="torch", seed=0, contamination=0.1, **hyperparameters)
    det.fit(x_train, epochs=..., validation_data=(x_val, y_val))  # fit(X, y): y ignored
    scores = det.decision_function(x_test)   # higher = more anomalous
    det.predict(x_test)                      # 0/1 at threshold_, from training scores
    det.score_variants(x_test)               # every score of the paper, by name
    det.save(path); Detector.load(path)

The shared ground lives in one module per job:

=====================  ==========================================================
``ganlib.data``        verified loaders for MNIST, KDDCup99, Arrhythmia, CIFAR-10
``ganlib.protocols``   the papers' train / validation / test splits
``ganlib.metrics``     AUROC, AUPRC, precision/recall/F1 at a contamination rate
``ganlib.plots``       training curves, score histograms, ROC, reconstructions
``ganlib.detector``    the detector contract and the framework-neutral training loop
``ganlib.baselines``   PCA, Isolation Forest, one-class SVM, kNN with the same API
``ganlib.losses``      loss algebra written once for NumPy, PyTorch and Keras
``ganlib.runmode``     quick mode (``GANLIB_QUICK=1``) and run reports
``ganlib.display``     showing ganlib's own source inside the book
``ganlib.ema``         exponential moving averages of weights, in both frameworks
``ganlib.porting``     copying weights between the PyTorch and Keras twins
``ganlib.images``      padding images to the DCGAN networks' size and back
=====================  ==========================================================

The models, one package per paper (``__init__`` framework-neutral, then ``torch_model``
and ``keras_model``): ``ganlib.autoencoder`` (the baseline), ``ganlib.alocc``,
``ganlib.ognet``, ``ganlib.ganomaly``, ``ganlib.egbad``, ``ganlib.alad``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
