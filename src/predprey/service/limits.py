"""Default limits of the buffer service (no imports: the CLI reads them for its --help).
A request over one is refused with a 413 naming the `serve-buffer` flag that raises it."""

MAX_ROW_WIDTH = 16384  # values per row of one key (--max-row-width)
MAX_MEMORY = 8 * 2**30  # bytes of the preallocated ring: capacity x 4 x row values (--max-memory)
MAX_RANK = 8  # dimensions of a policy tensor
MAX_ELEMENTS = 2**28  # elements of a policy tensor, zero dimensions left out
