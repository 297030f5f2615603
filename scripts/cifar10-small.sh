#!/usr/bin/env bash
# CIFAR-10 end to end at a CPU size (issue 12, item 4): NSGF++ and I-CFM with the `small` UNet
# (configs/cifar10-small), N = 1,000 samples at NFE 20, FID against 2,000 test images (evenly
# spaced over the classes); tables and grids in results/cifar10-small. On this 2-core machine
# the whole script takes a few hours; every stage resumes.
#
#   scripts/cifar10-small.sh [train|sample|fid|reference|table|figures|all|status]     (default: all)
#
# Stages and environment: scripts/image-experiment.sh.
cd "$(dirname "$0")/.."
DATASET=cifar10 PREFIX=cifar10-small MADE_BY=scripts/cifar10-small.sh \
    METHODS=${METHODS:-"nsgfpp icfm"} N=${N:-1000} NFES=${NFES:-20} REF_N=${REF_N:-2000} \
    exec scripts/image-experiment.sh "$@"
