"""`tdn train`: Darknet's classifier training on torch autograd (CPU, or CUDA where torch has it).

One concept per module: options (the cfg's [net] training options), schedule (learning-rate
policies), augment (Darknet's image augmentation), data (the labelled images), model (the
trainable network), finetune (replacing the classifier), checkpoint, loop (the updates),
setup (cfg + data -> a run) and command (the command line).
"""
