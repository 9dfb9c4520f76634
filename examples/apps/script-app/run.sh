#!/bin/sh
echo "script app says: ${GREETING:-nothing}"
