-- Tables for video calls (issue: calls). Reserved so the three products can land in any order.
SELECT 1;
