#!/usr/bin/env bash
# The MNIST experiment (the paper's Table 2 on this machine): NSGF++, I-CFM (= 1-RF), OT-CFM and
# S-JKO on the paper's MNIST UNet (configs/mnist), FID of N = 10,000 samples against the 10,000
# test images at NFE 10, 20, 60 (S-JKO: 1); tables, figures and the samples behind each method's
# best FID (uint8 .npy) in results/mnist.
#
#   scripts/mnist-experiment.sh [train|sample|fid|reference|table|figures|all|status]     (default: all)
#
# `all` trains each method and scores it at NFE 20 and 10 (the head-to-head) before any NFE-60
# draw; the table sorts the columns.
#
# Stages and environment: scripts/image-experiment.sh.
cd "$(dirname "$0")/.."
DATASET=mnist KEEP_SAMPLES=${KEEP_SAMPLES:-1} NFES=${NFES:-"20 10 60"} MADE_BY=scripts/mnist-experiment.sh exec scripts/image-experiment.sh "$@"
