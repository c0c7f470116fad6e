"""Reading data sets, checking arrays and writing results."""

from .readers import Dataset, load_digits_images, read_data, read_idx, read_image_folder
from .validation import check_array_finite, to_float_array
from .writers import write_table

__all__ = [
    "Dataset",
    "check_array_finite",
    "load_digits_images",
    "read_data",
    "read_idx",
    "read_image_folder",
    "to_float_array",
    "write_table",
]
