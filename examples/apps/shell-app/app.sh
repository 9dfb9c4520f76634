#!/bin/sh
echo "hello from the shell app; APP_SHA256=${APP_SHA256:-unset}"
