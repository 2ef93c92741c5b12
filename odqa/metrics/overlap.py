"""F1 from an overlap count, with the official scripts' exact float operations and order."""


def overlap_f1(num_same: int, num_predicted: int, num_gold: int) -> float:
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / num_predicted
    recall = 1.0 * num_same / num_gold
    return (2 * precision * recall) / (precision + recall)
