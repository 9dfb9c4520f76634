import BuildpackSpec
import Glibc

exit(0)
