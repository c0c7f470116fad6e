"""Reading data sets, checking arrays and writing results."""

from .readers import Dataset, load_digits_images, read_data, read_idx, read_image_folder
from .streaming import TableStream, stream, write_stream_results
from .validation import check_array_finite, to_float_array
from .writers import ChunkedTableWriter, write_table

__all__ = [
    "ChunkedTableWriter",
    "Dataset",
    "check_array_finite",
    "load_digits_images",
    "read_data",
    "read_idx",
    "read_image_folder",
    "stream",
    "TableStream",
    "to_float_array",
    "write_stream_results",
    "write_table",
]
