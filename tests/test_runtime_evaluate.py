import numpy as np
from edgesight.runtime.evaluate import confusion_matrix, most_frequent_confusions


def test_confusions_are_the_wrong_reads_counted_by_pair_most_frequent_first():
    labels = np.array([3, 3, 3, 3, 5, 5, 7, 7, 7, 1])
    read = np.array([5, 5, 5, 3, 5, 3, 1, 1, 7, 1])
    matrix = confusion_matrix(labels, read, 8)
    assert most_frequent_confusions(matrix, 5) == [(3, 5, 3), (7, 1, 2), (5, 3, 1)]
    assert most_frequent_confusions(matrix, 1) == [(3, 5, 3)]
    assert most_frequent_confusions(confusion_matrix(labels, labels, 8), 5) == []
