print("sqakd")
